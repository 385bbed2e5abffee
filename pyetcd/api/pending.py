"""Services whose server side is not built yet (they answer UNIMPLEMENTED, see README).

None are left: Auth was the last (pyetcd/api/auth.py). The module stays because tests look here
to learn whether a service is still stubbed."""
