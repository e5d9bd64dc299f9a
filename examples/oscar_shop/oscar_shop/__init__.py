"""The Oscar demo shop's Django project (see ``examples/oscar_shop/run_demo.py``)."""
