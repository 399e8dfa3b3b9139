"""Application services, one module per use case: ingestions (create, edit, status), runs (start, retry,
reprocess), schema review, preview and clusters. Built once by `app/bootstrap.py`; the API routes, the console's
pages and the CLI call them, and read through `app/views.py`."""
