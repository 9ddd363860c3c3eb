"""Plug-ins for other libraries. Each one is imported on its own (and only then imports the
library it plugs into):

* ``maskattn.integrations.transformers``: Hugging Face transformers, ``attn_implementation="maskattn"``.
"""
