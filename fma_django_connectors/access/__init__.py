"""Who may call what, and how often: authentication (``CLIENT-UUID``, signatures, guarded Basic), permissions,
the registration rule with its enrollment tokens, the token login, the brakes on abuse (throttling), and signed
requests' nonces (``nonces``, their clean-ups ``sweeps``).

Layer rule: below ``api`` (whose views, serializers and OpenAPI description use these classes) and beside
``admin``; above the data layer. Of this package, modules here import ``services``, ``selectors``,
``client_ids``, ``schemas``, ``exceptions`` and ``models`` only, never ``api``.
"""
