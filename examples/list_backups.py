"""An environment's backups, and the newest completed one's download URLs.

OEC_API_KEY=oec_live_ro_... python examples/list_backups.py [ENV_ID]
"""

import asyncio
import sys

from oec_async import OECClient


async def main(env_id: str | None) -> None:
    async with OECClient() as client:  # key from $OEC_API_KEY
        if env_id is None:  # the first environment the key sees
            env_id = str((await anext(client.iter_environments())).id)
        page = await client.list_backups(env_id, status="completed", page_size=50)
        print(page.total, [str(b.id) for b in page.items])

        async for backup in client.iter_backups(env_id):  # every page, newest first
            print(backup.created_at, backup.status, backup.backup_type)

        latest = await client.latest_backup(env_id)  # newest completed, or None
        if latest is not None:
            urls = await client.get_download_urls(latest.id, expires_in=3600)
            print(urls)  # presigned URLs are secrets: the repr shows no query string


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
