"""Smithy RPC v2 CBOR for CloudWatch, which moto does not speak (test tooling only).

aws-sdk-cloudwatch sends `POST /service/GraniteServiceVersion20100801/operation/{Op}` with a CBOR
body (the service's default protocol since 2025: https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html);
moto serves CloudWatch over its JSON protocol (also in the service's `protocols`). This middleware
turns such a request into the JSON request moto answers, and its answer back into CBOR, typed by
the botocore model of the operation's output (timestamps as tag 1, doubles as floats), as the
SDK's deserializer reads them. Errors keep their `__type` and `message`.
"""
import io
import json
import re

import cbor2

PATH = re.compile(r"^/service/(?P<service>[A-Za-z0-9]+)/operation/(?P<operation>[A-Za-z0-9]+)$")
_MODELS = {}


def _operation_model(service, operation):
    import botocore.session

    if service not in _MODELS:
        session = botocore.session.get_session()
        name = {"GraniteServiceVersion20100801": "cloudwatch"}.get(service)
        _MODELS[service] = session.get_service_model(name) if name else None
    model = _MODELS[service]
    return model.operation_model(operation) if model else None


def _typed(value, shape):
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _typed(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_typed(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _typed(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        return cbor2.CBORTag(1, float(value))
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    return value


def _plain(value):
    """CBOR request values as JSON values (timestamps as epoch seconds)."""
    import datetime

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, cbor2.CBORTag):
        return _plain(value.value)
    return value


def wrap(app):
    def call(environ, start_response):
        match = PATH.match(environ.get("PATH_INFO", ""))
        if not match or "cbor" not in environ.get("CONTENT_TYPE", ""):
            return app(environ, start_response)
        service, operation = match.group("service"), match.group("operation")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.dumps(_plain(cbor2.loads(raw)) if raw else {}).encode()
        environ = dict(environ)
        environ.update({
            "PATH_INFO": "/",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": f"{service}.{operation}",
            "wsgi.input": io.BytesIO(body),
        })
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        answer = b"".join(app(environ, capture))
        status = captured.get("status", "500 INTERNAL SERVER ERROR")
        decoded = json.loads(answer) if answer.strip() else {}
        if status.startswith("2"):
            model = _operation_model(service, operation)
            decoded = _typed(decoded, model.output_shape if model else None)
        payload = cbor2.dumps(decoded)
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() not in ("content-type", "content-length")]
        headers += [
            ("Content-Type", "application/cbor"),
            ("Content-Length", str(len(payload))),
            ("smithy-protocol", "rpc-v2-cbor"),
        ]
        start_response(status, headers)
        return [payload]

    return call


def install():
    """Wraps moto's server application (idempotent)."""
    from moto.moto_server import werkzeug_app

    app_class = werkzeug_app.DomainDispatcherApplication
    if getattr(app_class, "_trailkeeper_cbor", False):
        return
    app_class._trailkeeper_cbor = True
    original = app_class.__call__

    def __call__(self, environ, start_response):
        return wrap(lambda e, s: original(self, e, s))(environ, start_response)

    app_class.__call__ = __call__
