"""Moving whole sites in and out: WordPress (WXR) and Disqus imports, and our own
JSON format for a lossless export and restore.

The parsers (`wxr`, `disqus`) turn a file into plain records; `importer` writes
records of any source the same way (idempotent, threaded like `moderation.submit`,
in one transaction); `json_format` exports and restores everything we store.
"""
