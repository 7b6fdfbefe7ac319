"""The benchmark suite: trioserve against its peers (``make bench``; not collected by pytest).

``python -m benchmarks`` runs every comparison; see benchmarks/README.md.
"""
