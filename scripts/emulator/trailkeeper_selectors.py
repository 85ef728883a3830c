"""PutEventSelectors as CloudTrail validates it; moto stores whatever it is sent. Test tooling
only, never the product; installed by trailkeeper_strict.install().

- "You can use either AdvancedEventSelectors or EventSelectors, but not both"
  (InvalidParameterCombinationException).
- "A trail can have up to 5 event selectors", "a maximum of 500 total values for all conditions in
  all advanced event selectors", "A trail is limited to 250 data resources"
  (InvalidEventSelectorsException).
  https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_PutEventSelectors.html
- Each advanced selector names its eventCategory with Equals ("This is required and must be set
  to Equals"); readOnly, eventCategory and resources.type take Equals only; data events need
  resources.type; management events filter on eventCategory, eventSource and readOnly.
  https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_AdvancedFieldSelector.html
- Network activity events ("Logging network activity events"): eventCategory NetworkActivity with
  Equals only; eventSource required, Equals only, one event source per selector, among the
  services that record them; the other fields are eventName, errorCode and vpcEndpointId; "The
  only valid value for errorCode is VpceAccessDenied".
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-network-events-with-cloudtrail.html
"""
from moto.core.exceptions import JsonRESTError

# The services that record network activity events (CloudTrail user guide; AWS's announcement adds S3).
NETWORK_ACTIVITY_SOURCES = {
    "cloudtrail.amazonaws.com",
    "ec2.amazonaws.com",
    "kms.amazonaws.com",
    "s3.amazonaws.com",
    "secretsmanager.amazonaws.com",
}
NETWORK_ACTIVITY_FIELDS = {"eventCategory", "eventSource", "eventName", "errorCode", "vpcEndpointId"}
MANAGEMENT_FIELDS = {"eventCategory", "eventSource", "readOnly"}
EQUALS_ONLY = {"readOnly", "eventCategory", "resources.type"}
OPERATORS = ("Equals", "NotEquals", "StartsWith", "NotStartsWith", "EndsWith", "NotEndsWith")


class _Refused(JsonRESTError):
    code = 400

    def __init__(self, error_type, message):
        super().__init__(error_type, message)


def _invalid(message):
    return _Refused("InvalidEventSelectorsException", message)


def _operators(field):
    return {op: field.get(op) or [] for op in OPERATORS if field.get(op)}


def check_advanced(selectors):
    """Refuses advanced event selectors CloudTrail refuses for a trail."""
    total = sum(len(values) for s in selectors for f in s.get("FieldSelectors") or [] for values in _operators(f).values())
    if total > 500:
        raise _invalid(f"{total} values in the advanced event selectors: at most 500 for all conditions on a trail.")
    for selector in selectors:
        fields = selector.get("FieldSelectors") or []
        name = selector.get("Name", "")
        by_name = {}
        for f in fields:
            by_name.setdefault(f.get("Field"), []).append(f)
            ops = _operators(f)
            if not ops:
                raise _invalid(f"Selector {name}: field {f.get('Field')} has no operator.")
            if f.get("Field") in EQUALS_ONLY and set(ops) != {"Equals"}:
                raise _invalid(f"Selector {name}: {f.get('Field')} supports the Equals operator only.")
        categories = by_name.get("eventCategory") or []
        if len(categories) != 1:
            raise _invalid(f"Selector {name}: eventCategory is required, once.")
        category = categories[0].get("Equals") or []
        if category == ["NetworkActivity"]:
            _check_network(name, fields, by_name)
        elif category == ["Data"]:
            if not by_name.get("resources.type"):
                raise _invalid(f"Selector {name}: resources.type is required for data events.")
        elif category == ["Management"]:
            unsupported = sorted(set(by_name) - MANAGEMENT_FIELDS)
            if unsupported:
                raise _invalid(f"Selector {name}: {', '.join(unsupported)} not supported for management events on a trail.")
        else:
            raise _invalid(f"Selector {name}: eventCategory {category} is not valid for a trail.")
        for f in by_name.get("readOnly") or []:
            if any(v not in ("true", "false") for v in f.get("Equals") or []):
                raise _invalid(f"Selector {name}: readOnly takes true or false.")


def _check_network(name, fields, by_name):
    unsupported = sorted(set(by_name) - NETWORK_ACTIVITY_FIELDS)
    if unsupported:
        raise _invalid(f"Selector {name}: {', '.join(unsupported)} not supported for network activity events.")
    sources = by_name.get("eventSource") or []
    if len(sources) != 1:
        raise _invalid(f"Selector {name}: network activity events need one eventSource field.")
    ops = _operators(sources[0])
    values = ops.get("Equals") or []
    if set(ops) != {"Equals"} or len(values) != 1:
        raise _invalid(f"Selector {name}: eventSource takes Equals with one event source per selector.")
    if values[0] not in NETWORK_ACTIVITY_SOURCES:
        raise _invalid(f"Selector {name}: {values[0]} does not record network activity events.")
    for f in by_name.get("errorCode") or []:
        if _operators(f) != {"Equals": ["VpceAccessDenied"]}:
            raise _invalid(f"Selector {name}: the only valid value for errorCode is VpceAccessDenied (Equals).")


def check_basic(selectors):
    """Refuses basic event selectors CloudTrail refuses for a trail."""
    if not 1 <= len(selectors) <= 5:
        raise _invalid(f"{len(selectors)} event selectors: a trail has 1 to 5.")
    resources = sum(len(s.get("DataResources") or []) for s in selectors)
    if resources > 250:
        raise _invalid(f"{resources} data resources: a trail has at most 250.")
    for s in selectors:
        if s.get("ReadWriteType", "All") not in ("All", "ReadOnly", "WriteOnly"):
            raise _invalid(f"ReadWriteType {s.get('ReadWriteType')} is not valid.")


def install():
    """Wraps CloudTrailBackend.put_event_selectors. Idempotent."""
    from moto.cloudtrail import models

    backend = models.CloudTrailBackend
    if getattr(backend, "_trailkeeper_selectors", False):
        return
    backend._trailkeeper_selectors = True
    put_event_selectors = backend.put_event_selectors

    def strict_put_event_selectors(self, trail_name, event_selectors, advanced_event_selectors):
        if event_selectors and advanced_event_selectors:
            raise _Refused(
                "InvalidParameterCombinationException",
                "You can use either AdvancedEventSelectors or EventSelectors, but not both.",
            )
        if advanced_event_selectors:
            check_advanced(advanced_event_selectors)
        elif event_selectors is not None:
            check_basic(event_selectors)
        return put_event_selectors(self, trail_name, event_selectors, advanced_event_selectors)

    backend.put_event_selectors = strict_put_event_selectors
