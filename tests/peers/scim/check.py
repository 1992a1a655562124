"""Runs scim2-tester's checks against a SCIM server: check.py BASE_URL TOKEN.

Prints one JSON list of every check's result (title, status, reason, resource type), for the
Rust test to judge. The token comes from the environment variable SCIM_TOKEN, not the command
line (where any process could read it)."""

import json
import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server

base_url = sys.argv[1]
token = os.environ["SCIM_TOKEN"]
http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
client = SyncSCIMClient(http)
results = check_server(client, raise_exceptions=False)
print(
    json.dumps(
        [
            {
                "title": r.title,
                "status": r.status.name,
                "reason": r.reason,
                "resource_type": r.resource_type,
            }
            for r in results
        ]
    )
)
