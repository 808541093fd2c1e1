# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GitHub connection options shared by the collection's GitHub modules (GITHUB_ARGUMENT_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description: The GitHub REST API's base URL (the local stand-in in development).
    type: str
    default: https://api.github.com
  token:
    description:
      - A GitHub token with the rights the module's notes name. Falls back to E(GITHUB_TOKEN).
      - Never logged or returned.
    type: str
    required: true
  validate_certs:
    description: Whether to verify the API's TLS certificate.
    type: bool
    default: true
  api_timeout:
    description:
      - Seconds to wait for the connection and for each read of a response. An API that accepts the
        connection but never answers fails the task after this, naming the endpoint.
    type: float
    default: 20
"""

    # the repository a module acts on (GITHUB_REPOSITORY_SPEC)
    REPOSITORY = r"""
options:
  owner:
    description: The repository's owner (organisation or user).
    type: str
    required: true
  repo:
    description: The repository's name.
    type: str
    required: true
"""
