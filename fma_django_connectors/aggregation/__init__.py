"""When an aggregation is asked for: what storing an update sets off (``triggers``: in-process, the aggregator
Lambda, or nothing) and each model's periodic EventBridge rule (``schedules``). How an aggregation runs lives
in ``fma_core.workflows.aggregation``, over the Django implementations in ``connectors``.

Layer rule: below ``services`` (which calls in here after a write commits), above the data layer. Of this
package, modules here import ``selectors`` and ``models`` only (besides Django and ``fma_core``), never
``services``, ``access`` or ``api``.
"""
