"""Whether the cluster has an authorizer, and how many ACL bindings it holds (DescribeAcls).

What the worker's own principal may do is asked of the broker itself (stream/kafka_access.py: authorized
operations per topic and group), which also covers super users and principals mapped from certificates or
tokens; DescribeAcls answers the one thing that cannot: whether any authorizer is configured. aiokafka's
admin client has no `describe_acls`, though it ships the protocol's request; the one private call here
(`AIOKafkaAdminClient._send_request`) sends it to a broker.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DescribeAclsRequest

SECURITY_DISABLED = 54
"""The broker's answer to DescribeAcls when it runs without an authorizer."""
ANY = 1
"""The ANY filter of DescribeAcls' resource type, pattern type, operation and permission."""


async def acl_bindings(admin: AIOKafkaAdminClient) -> int | None:
    """How many ACL bindings the cluster holds; None when it has no authorizer. Raises PermissionError
    naming the broker's error when the principal may not describe them (DESCRIBE on the cluster)."""
    request = DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY)  # type: ignore[arg-type]
    response = await admin._send_request(request)  # no public describe_acls in aiokafka
    if response.error_code == SECURITY_DISABLED:
        return None
    if response.error_code:  # the class name says it in a word; the broker's message is a request dump
        raise PermissionError(for_code(response.error_code).__name__)
    return sum(len(resource[-1]) for resource in response.resources)
