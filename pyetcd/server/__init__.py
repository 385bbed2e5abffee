"""The pyetcd member: configuration, the write path (propose, log, apply), and the apply chain."""
