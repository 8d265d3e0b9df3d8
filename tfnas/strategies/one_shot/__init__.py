"""One-shot strategies: a supernet trained on the corpus (DARTS, NASABN, ENAS, WeNet, BayesNAS, NAO-WS, RSWS)."""
