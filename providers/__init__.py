"""Platform adapters (one package per platform) and the machinery they share (`base`, `http`, `tokens`)."""
