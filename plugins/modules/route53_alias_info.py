#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: route53_alias_info
short_description: What the alias records of a domain point at, and what could take them, in one call
version_added: 0.2.0
description:
  - Reads, in one module run, what the C(biomage.iac.route53_dns) role checks before it converges the
    alias records of a domain to a load balancer, in the shapes of amazon.aws's info modules
    (keys in snake_case).
  - The public hosted zone by name (route53:ListHostedZonesByName), unless its id is given.
  - Once a load balancer hostname and a zone are known, every elbv2 load balancer of the region
    (elasticloadbalancing:DescribeLoadBalancers), the domain's A record sets (route53:ListResourceRecordSets,
    from the domain on, ten at most) and the parameters of the deployment's DNS stack
    (cloudformation:DescribeStacks; none when it does not exist).
  - Read-only.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - biomage.iac.aws_client
  - biomage.iac.attributes
  - biomage.iac.attributes.info_module
author:
  - Biomage platform team (@biomage-org)
options:
  domain_name:
    description: The domain whose alias records (the name and C(*.)the name) are read.
    type: str
    required: true
  hosted_zone_id:
    description: The public hosted zone holding the domain. Empty to look it up by O(hosted_zone_name).
    type: str
    default: ""
  hosted_zone_name:
    description: The name of the public hosted zone, looked up when O(hosted_zone_id) is empty.
    type: str
    default: ""
  load_balancer_hostname:
    description:
      - The DNS name of the load balancer the records are to point at.
      - Empty (a check run before the load balancer exists) to look up only the zone.
    type: str
    default: ""
  stack_name:
    description: The deployment's own DNS stack, whose parameters name the load balancer it points at.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Read the zone, the load balancers, the records and the DNS stack
  biomage.iac.route53_alias_info:
    domain_name: scp.example.org
    hosted_zone_name: example.org
    load_balancer_hostname: k8s-traefik-0123456789.elb.eu-west-1.amazonaws.com
    stack_name: biomage-route53-staging
    region: eu-west-1
  register: dns
"""

RETURN = r"""
hosted_zone_id:
  description:
    - The given zone id, or the id (without C(/hostedzone/)) of the one public zone of that name.
    - Empty when there is none, or several.
  returned: always
  type: str
  sample: Z0123456789ABCDEFGHIJ
hosted_zones:
  description: The zones ListHostedZonesByName returned from the name on (empty when the id was given).
  returned: always
  type: list
  elements: dict
load_balancers:
  description: Every elbv2 load balancer of the region (empty before a hostname and a zone are known).
  returned: always
  type: list
  elements: dict
resource_record_sets:
  description: The A record sets from the domain on, ten at most (empty before a hostname and a zone are known).
  returned: always
  type: list
  elements: dict
stack_parameters:
  description: The DNS stack's parameters; empty when it does not exist or was not read.
  returned: always
  type: dict
load_balancer:
  description:
    - The region's load balancer whose DNS name is O(load_balancer_hostname), compared without case, a trailing
      dot or a C(dualstack.) prefix; empty when there is none (or nothing was read yet).
  returned: always
  type: dict
holder:
  description:
    - The DNS name (compared as for RV(load_balancer)) the domain's alias record points at now; empty when the
      domain has no alias record.
  returned: always
  type: str
  sample: k8s-traefik-0123456789.elb.eu-west-1.amazonaws.com
holder_load_balancer:
  description: The region's load balancer of that name; empty when RV(holder) is not one of the region's.
  returned: always
  type: dict
ours:
  description:
    - The DNS names that are this deployment's (compared as for RV(load_balancer)), RV(load_balancer)'s and the
      one its DNS stack points at; the records may be repointed away from these only.
  returned: always
  type: list
  elements: str
read:
  description: What was read, in order.
  returned: always
  type: list
  elements: str
  sample: [hosted_zones, load_balancers, resource_record_sets, stack_parameters]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.dns import alias_target
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail


def main():
    spec = {
        "domain_name": {"type": "str", "required": True},
        "hosted_zone_id": {"type": "str", "default": ""},
        "hosted_zone_name": {"type": "str", "default": ""},
        "load_balancer_hostname": {"type": "str", "default": ""},
        "stack_name": {"type": "str", "default": ""},
    }
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    module = AnsibleAWSModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    clients = {}

    def client(service):
        if service not in clients:
            clients[service] = module_client(module, service)
        return clients[service]

    try:
        found = alias_target.read(
            client,
            module_settings(module),
            params["hosted_zone_id"],
            params["hosted_zone_name"],
            params["domain_name"],
            params["load_balancer_hostname"],
            params["stack_name"],
        )
    except BiomageError as exc:
        fail(module, exc)
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
