"""Progressive delivery on the local mesh: `shopmesh rollout` (see controller.py).

shopmesh/local/proxy_stats.py reads each version's calls at its callers' proxies,
controller.py moves the weights and judges each window by shopmesh/rollout.yaml,
control.py is the runner's socket the command talks to, report.py the live line,
table and picture.
"""
