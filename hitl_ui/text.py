"""User-provided text (project, file, column, class and user names, notes) shown as plain text.

Streamlit renders Markdown in titles, headers, captions, ``st.markdown``, alerts, metric and widget
labels and radio options. A project named ``[click](http://evil.example)`` would become a live link
there, ``**x**`` bold text. Every user string that goes into one of those passes through
:func:`md_escape` (or :func:`md_code` inside backticks); tables (``st.dataframe``), ``st.text`` and
selectbox/multiselect options are plain text already and need nothing.
"""
from hitl_core.markup import WORD_JOINER, md_code, md_escape, plotly_text

__all__ = ["WORD_JOINER", "md_code", "md_escape", "plotly_text"]
