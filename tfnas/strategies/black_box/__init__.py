"""Black-box strategies: ask/tell over an evaluator (random search, REINFORCE)."""
