"""What ``archsearch benchmark`` runs: strategies compared on a tabular benchmark over many seeds
(:mod:`~archsearch.comparison.strategies`) and, with several objectives, scored against the table's true Pareto
front (:mod:`~archsearch.comparison.pareto`)."""
