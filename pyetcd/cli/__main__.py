from pyetcd.cli.main import main

main()
