"""tickerserve: serve per-ticker LightGBM trading models on AWS serverless."""

__version__ = "0.1.0"
