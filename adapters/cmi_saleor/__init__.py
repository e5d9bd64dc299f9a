"""CMI payments for Saleor: a Django app speaking Saleor's Transactions API.

A Saleor store installs the app from its manifest (``api/manifest``); shoppers pay on
CMI's hosted page through ``transactionInitialize`` / ``transactionProcess``; CMI's
callback is reported to Saleor with ``transactionEventReport``; charges, refunds and
cancellations requested in Saleor go to CMI's API. The payment logic is the shared Django
layer's (:mod:`cmi_django`) and the core's (:mod:`cmi_core`); this package turns Saleor's
webhooks into calls to them and their results into Saleor's answers. See ``docs/saleor.md``.
"""
