"""Baselines: what "normal" looked like for one version, fitted at publish time.

``baseline`` fits and reads the reference distributions and validation metrics (``metrics``
and ``moments`` compute them from streaming tallies); ``persistence`` says where a version's
baseline lives and keeps its sha256 in the chain. Used by both ``publishing`` (writing) and
``monitor`` (reading); may import ``storage`` and below.
"""
