"""Chaos scenarios against the local mesh, each ending with the shop's invariants checked.

    shopmesh chaos kill-replicas          # the full form
    shopmesh chaos kill-replicas --short  # the form tests/shopmesh/chaos runs

harness.py runs a scenario on a fresh LocalMesh; scenarios/ holds the
scenarios; invariants.py is the checker, fed by ledger.py (the services'
databases, read-only) and ops.py (stock levels through the mesh with the
`ops` identity).
"""
