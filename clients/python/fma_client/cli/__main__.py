"""``python -m fma_client.cli``: the ``fma`` command without its console script."""

from fma_client.cli.app import main

main()
