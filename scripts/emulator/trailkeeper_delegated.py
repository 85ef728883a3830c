"""An Organization trail created by a delegated administrator of CloudTrail belongs to the
Organization's management account: "The organization's management account remains the owner of
any CloudTrail organization resources the delegated administrator creates", so its ARN (in
CreateTrail's answer, GetTrail, DescribeTrails, and CloudTrail's aws:SourceArn and
aws:SourceAccount) names the management account; the delegated administrator keeps managing it
by that ARN. moto names every trail with the account that created it. Test tooling only.
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delegated-administrator.html
"""
import threading

_CREATING = threading.local()


def owner_of_new_trail(account_id, is_org_trail):
    """The account a trail `account_id` creates belongs to: the management account for an
    Organization trail of a delegated administrator, else `account_id`."""
    if not is_org_trail:
        return account_id
    import trailkeeper_strict

    org = trailkeeper_strict._org_of(account_id)
    if org is None or org[1] == account_id:
        return account_id
    return org[1]


def creating_for(owner):
    """The owner of the trail the current request creates (None when done)."""
    _CREATING.owner = owner


def install():
    """Trails carry their owner (the account of their ARN). Idempotent."""
    from moto.cloudtrail import models
    from moto.utilities.utils import get_partition

    trail_class = models.Trail
    if getattr(trail_class, "_trailkeeper_owner", False):
        return
    trail_class._trailkeeper_owner = True
    init = trail_class.__init__

    def owned_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.owner_account_id = getattr(_CREATING, "owner", None) or self.account_id

    def arn(self):
        owner = getattr(self, "owner_account_id", None) or self.account_id
        return f"arn:{get_partition(self.region_name)}:cloudtrail:{self.region_name}:{owner}:trail/{self.trail_name}"

    trail_class.__init__ = owned_init
    trail_class.arn = property(arn)
