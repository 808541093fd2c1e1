# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bounded thread pool the planner and the applier share (``max_workers`` stacks at a time)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def bounded_map(func, items, max_workers):
    """``func`` over ``items``, at most ``max_workers`` at once; results in the order of ``items``."""
    if not items:
        return []
    if len(items) == 1 or max_workers == 1:
        return [func(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(func, items))
