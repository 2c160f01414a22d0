"""``repro-build image``: a target's lock + project wheel + base → an OCI image, assembled without Docker."""
