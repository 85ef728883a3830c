"""Patches moto bugs that the Rust SDK trips over, in the test emulator only (never in the product).

- GetBucketVersioning: moto 5.2.x answers with a <GetBucketVersioningResponse> root; S3 (and the
  Rust SDK's strict XML parser) use <VersioningConfiguration>.
- Athena: moto 5.2.x lacks BatchGetNamedQuery (how trailkeeper reads its named queries, one call
  for up to 50), UpdateWorkGroup, UpdateNamedQuery and DeleteNamedQuery (the calls that repair a
  workgroup's result configuration and a changed audit query); added here with AWS's semantics for
  the fields trailkeeper uses.
- AWS preconditions moto does not check (bucket and key policies CloudTrail needs, Organization
  trails, the bucket policy CreateFlowLogs writes): scripts/emulator/trailkeeper_strict.py, loaded
  when the moto server's app module is imported.
Idempotent: a patched file is left as it is.
"""
import pathlib
import sys

import moto.athena.responses as athena_responses
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
if new not in source:
    if old not in source:
        sys.exit(f"moto's get_bucket_versioning changed; review {path}")
    path.write_text(source.replace(old, new))

ATHENA_MARK = "# trailkeeper: BatchGetNamedQuery, UpdateWorkGroup, UpdateNamedQuery, DeleteNamedQuery"
ATHENA_PATCH = ATHENA_MARK + '''


def _tk_batch_get_named_query(self):
    found, unprocessed = [], []
    for query_id in self._get_param("NamedQueryIds") or []:
        nq = self.athena_backend.named_queries.get(query_id)
        if nq is None:
            unprocessed.append({"NamedQueryId": query_id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": "not found"})
            continue
        found.append({
            "Name": nq.name,
            "Description": nq.description,
            "Database": nq.database,
            "QueryString": nq.query_string,
            "NamedQueryId": nq.id,
            "WorkGroup": nq.workgroup.name,
        })
    return json.dumps({"NamedQueries": found, "UnprocessedNamedQueryIds": unprocessed})


def _tk_update_work_group(self):
    name = self._get_param("WorkGroup")
    wg = self.athena_backend.work_groups.get(name)
    if wg is None:
        return self.error(f"WorkGroup {name} is not found.", 400)
    if self._get_param("Description") is not None:
        wg.description = self._get_param("Description")
    if self._get_param("State"):
        wg.state = self._get_param("State")
    updates = self._get_param("ConfigurationUpdates") or {}
    config = wg.configuration
    for flag in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "RequesterPaysEnabled"):
        if flag in updates:
            config[flag] = updates[flag]
    results = updates.get("ResultConfigurationUpdates") or {}
    current = config.setdefault("ResultConfiguration", {})
    for field in ("OutputLocation", "EncryptionConfiguration", "ExpectedBucketOwner", "AclConfiguration"):
        if results.get("Remove" + field):
            current.pop(field, None)
        if field in results:
            current[field] = results[field]
    return "{}"


def _tk_update_named_query(self):
    nq = self.athena_backend.named_queries.get(self._get_param("NamedQueryId"))
    if nq is None:
        return self.error("NamedQuery not found", 400)
    nq.name = self._get_param("Name")
    nq.description = self._get_param("Description")
    nq.query_string = self._get_param("QueryString")
    return "{}"


def _tk_delete_named_query(self):
    self.athena_backend.named_queries.pop(self._get_param("NamedQueryId"), None)
    return "{}"


AthenaResponse.batch_get_named_query = _tk_batch_get_named_query
AthenaResponse.update_work_group = _tk_update_work_group
AthenaResponse.update_named_query = _tk_update_named_query
AthenaResponse.delete_named_query = _tk_delete_named_query
'''
athena_path = pathlib.Path(athena_responses.__file__)
athena_source = athena_path.read_text()
if ATHENA_MARK not in athena_source:
    athena_path.write_text(athena_source.rstrip("\n") + "\n\n\n" + ATHENA_PATCH)

# The strict rules: loaded by the server's app module, from this checkout (the path is rewritten
# when the checkout moves).
import moto.moto_server.werkzeug_app as werkzeug_app

STRICT_MARK = "# trailkeeper: strict AWS preconditions"
strict_dir = pathlib.Path(__file__).resolve().parent / "emulator"
strict_hook = (
    f"{STRICT_MARK}\n"
    f"import sys as _tk_sys\n"
    f"_tk_sys.path.insert(0, {str(strict_dir)!r})\n"
    f"import trailkeeper_strict\n"
    f"trailkeeper_strict.install()\n"
)
app_path = pathlib.Path(werkzeug_app.__file__)
app_source = app_path.read_text()
if strict_hook not in app_source:
    app_source = app_source.split(STRICT_MARK)[0].rstrip("\n")
    app_path.write_text(app_source + "\n\n\n" + strict_hook)
