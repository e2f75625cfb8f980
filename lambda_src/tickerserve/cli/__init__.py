"""The ``tickerserve`` command line: publishes models and keeps the registry consistent.

Only this package imports the CLI's extra dependencies (typer, rich, joblib, scikit-learn);
the Lambda runtime never imports it.
"""
