"""DisFER Studio: humans versus FER models on distorted faces, label audit and curation.

Arrows point one way: app_pages/ -> disfer/ -> disfer/store.py -> DuckDB. Nothing in this package
imports streamlit.
"""

from disfer.emotions import EMOTIONS

__all__ = ["EMOTIONS"]
__version__ = "0.1.0"
