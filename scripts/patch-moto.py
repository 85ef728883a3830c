"""Patches moto bugs that the Rust SDK trips over, in the test emulator only (never in the product).

- GetBucketVersioning: moto 5.2.x answers with a <GetBucketVersioningResponse> root; S3 (and the
  Rust SDK's strict XML parser) use <VersioningConfiguration>.
Idempotent: a patched file is left as it is.
"""
import pathlib
import sys

import moto.s3.responses as responses

path = pathlib.Path(responses.__file__)
source = path.read_text()
old = '''        result = {"Status": versioning}
        self.data["Action"] = "GetBucketVersioning"
        return self.serialized(ActionResult(result))'''
new = '''        status = f"<Status>{versioning}</Status>" if versioning else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{status}</VersioningConfiguration>"
        )
        return 200, {}, body'''
if new in source:
    sys.exit(0)
if old not in source:
    sys.exit(f"moto's get_bucket_versioning changed; review {path}")
path.write_text(source.replace(old, new))
