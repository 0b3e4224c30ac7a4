"""Look after the copies on disk, offline: re-hash them, check they are fresh, prune.

python examples/archive_care.py /srv/backups
"""

import sys
from datetime import timedelta

from oec_async import RetentionPolicy, archive_status, prune, verify_archive


def main(dest: str) -> int:
    bad = [r for r in verify_archive(dest) if not r.ok]  # re-hash everything
    for damaged in bad:
        print("damaged:", damaged.directory, damaged.problems)
    stale = 0
    for env in archive_status(dest):
        newest = env.newest_verified
        print(env.environment_id, newest.created_at if newest else "no verified backup")
        stale += env.stale(timedelta(hours=26))
    policy = RetentionPolicy(last=3, daily=7, weekly=4, monthly=6)
    pruned = prune(dest, policy, dry_run=True)  # say what a real prune would delete
    print("would delete", len(pruned.deleted), "folders,", pruned.bytes_freed, "bytes")
    return 1 if bad or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
