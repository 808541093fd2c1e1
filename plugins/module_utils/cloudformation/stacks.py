# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and converge a set of CloudFormation stacks (the logic behind ``biomage.iac.cfn_stacks``).

Three phases, in this order, so that nothing changes unless everything checked out:

1. :func:`~.spec.prepare` (``spec.py``): read and validate every template and its inputs. No AWS call.
2. :meth:`CfnStacks.plan` (``planner.py``): compare against the deployed stacks; any blocker fails
   the whole run here, before any change.
3. :meth:`CfnStacks.apply` (``applier.py``, skipped in check mode): deploy the changed stacks in
   dependency order, then prune.

:class:`CfnStacks` only composes the pieces of the room, each doing one job: ``client.py`` (the
API calls), ``waiter.py`` (waiting), ``planner.py``, ``applier.py`` and ``render.py`` (diffs and the
summary), with ``results.py`` holding what happened to each stack.
"""

from __future__ import annotations

import time

from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_shape
from ansible_collections.biomage.iac.plugins.module_utils.aws import aws_errors
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import render
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.applier import Applier
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.client import NEEDS, CfnClient
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.planner import Planner
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.waiter import Waiter


class CfnStacks:
    """Converges the stacks of one environment and group (``biomage:group`` tag) with one client.

    ``client`` is a boto3 CloudFormation client; any botocore error that escapes a phase becomes an
    :class:`~ansible_collections.biomage.iac.plugins.module_utils.aws.AwsError`.
    """

    def __init__(
        self,
        client,
        environment,
        group,
        *,
        settings=None,
        check_mode=False,
        prune=False,
        recreate_rollback_complete=False,
        deploy_method="change_set",
        max_workers=4,
        wait_timeout=1800,
        poll_delay=1.0,
        max_poll_delay=15.0,
        uploader=None,
        keep_change_sets=False,
        planned_change_sets=None,
        progress_interval=30.0,
        report=None,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        self.settings = settings or {}
        self.check_mode = check_mode
        max_workers = max(1, int(max_workers))
        self.api = CfnClient(
            client, self.settings, description=f"biomage.iac {environment}/{group}", retry_delay=poll_delay, sleep=sleep
        )
        waiter = Waiter(
            self.api,
            wait_timeout=wait_timeout,
            poll_delay=poll_delay,
            max_poll_delay=max_poll_delay,
            progress_interval=progress_interval,
            report=report,
            sleep=sleep,
            clock=clock,
        )
        self.planner = Planner(
            self.api,
            waiter,
            environment,
            group,
            check_mode=check_mode,
            prune=prune,
            recreate_rollback_complete=recreate_rollback_complete,
            max_workers=max_workers,
            uploader=uploader,
            keep_change_sets=keep_change_sets and check_mode,
            planned_change_sets=None if check_mode else planned_change_sets,
        )
        self.applier = Applier(
            self.api,
            waiter,
            environment=environment,
            group=group,
            deploy_method=deploy_method,
            max_workers=max_workers,
            uploader=uploader,
            clock=clock,
        )
        self.uploader = uploader
        # {stack name: StackResult} of the desired stacks and the orphans, the orphans' names, warnings
        self.results = self.planner.results
        self.orphans = self.planner.orphans
        self.warnings = self.planner.warnings

    @property
    def shared_api_calls(self):
        """API calls not attributable to one stack (DescribeStacks pages, ListExports)."""
        return self.api.shared_api_calls

    def _aws_errors(self):
        return aws_errors(self.settings, "converge the CloudFormation stacks", needs=NEEDS)

    def plan(self, specs):
        """Classify every stack; raise PlanFailed (before any change) when something blocks the run."""
        with self._aws_errors():
            return self.planner.plan(specs)

    def apply(self):
        """Deploy the planned changes in dependency order, then prune (nothing in check mode)."""
        if self.check_mode:
            return self.results
        with self._aws_errors():
            return self.applier.apply(self.results)

    def kept_change_sets(self):
        """Check mode with keep_change_sets: ``{stack name: record}`` of the change sets kept for a plan file."""
        return {name: dict(r.kept_change_set) for name, r in sorted(self.results.items()) if r.kept_change_set}

    def diffs(self):
        return render.diffs(self.results)

    def summary(self):
        return render.summary(self.results)

    def plan_entries(self):
        """Every stack (and the S3 bucket for large templates, when one is created) in the plan shape."""
        entries = [self.results[name].plan_entry() for name in sorted(self.results)]
        if self.uploader is not None and self.uploader.bucket_created:
            entries.insert(
                0, plan_shape.entry("S3 bucket", self.uploader.bucket, "create", "holds templates over 51,200 bytes")
            )
        return entries
