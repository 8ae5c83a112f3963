"""maillage — observatoire des interdépendances et des coopérations entre territoires.

Data flows one way: ``sources`` → ``store`` → ``analysis`` → ``delivery``; ``reference``
holds the territorial reference every room relies on. See ``docs/architecture.md``.
"""

__version__ = "0.1.0"
