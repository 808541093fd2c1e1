# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the biomage.iac AWS modules (module_utils/aws_connection.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region. Defaults to the E(AWS_REGION) or E(AWS_DEFAULT_REGION) environment variable.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - An AWS API endpoint to use instead of AWS, for example the local emulator of the development
        environment. Defaults to the E(AWS_ENDPOINT_URL) environment variable.
    type: str
    aliases: [aws_endpoint_url]
  profile:
    description:
      - A named AWS profile. Credentials otherwise come from the standard AWS chain (environment,
        SSO, instance or pod role); no option takes a secret key.
    type: str
    aliases: [aws_profile]
  connect_timeout:
    description: Seconds to wait for a connection to the endpoint.
    type: float
    default: 5.0
  read_timeout:
    description: Seconds to wait for an answer from the endpoint.
    type: float
    default: 60.0
  max_attempts:
    description:
      - Attempts per API call (standard retry mode with jittered exponential backoff; throttling and
        transient errors are retried).
    type: int
    default: 5
requirements:
  - boto3
  - botocore
"""
