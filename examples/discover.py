"""Every project and environment the key sees: the list `pull --all` pulls.

OEC_API_KEY=oec_live_ro_... python examples/discover.py
"""

import asyncio

from oec_async import OECClient


async def main() -> None:
    async with OECClient() as client:
        async for project in client.iter_projects():  # every cursor page
            print(project.id, project.name, project.environment_count)
            running = await client.list_environments(project.id, status="running")
            print("  running:", [env.name for env in running])

        async for env in client.iter_environments():  # all projects, each environment once
            print(env.id, env.name, env.status)  # an EnvironmentStatus, or a new str

        env = await client.get_environment(env.id)  # one, by id
        print(env.project_id, env.odoo_version, env.branch)


if __name__ == "__main__":
    asyncio.run(main())
