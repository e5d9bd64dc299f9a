"""Shared Django layer of cmi-payments: what the Oscar, Saleor and Wagtail adapters share.

The durable payment record, the callback log, the locked callback service, the okUrl and
failUrl handling, staff operations through CMI's API, settings -> ``cmi_core.CMIConfig``,
secret encryption at rest, read-only admin and the ``cmi_reconcile`` command. The contract
the platform adapters code against is ``docs/django-layer.md``. Protocol logic (hashing,
the §4.2.1 decision, the state machine) stays in :mod:`cmi_core`; this package persists
what the core decides.
"""
