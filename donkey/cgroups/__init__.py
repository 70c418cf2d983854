"""cgroup back ends (v1, cgroup2, and hybrid hosts driving both) behind one interface.

`for_host()` returns a Manager for the probed layout; `Manager.create()` returns a Cgroup
whose `apply()` writes a Resources into the right files.
"""

from donkey.cgroups.cgroup import Cgroup
from donkey.cgroups.fs import CgroupError, CgroupFS
from donkey.cgroups.manager import Manager, for_host
from donkey.cgroups.resources import Resources

__all__ = ["Cgroup", "CgroupError", "CgroupFS", "Manager", "Resources", "for_host"]
