"""confide's client side: the Python SDK and the ``confide`` command line."""

from ._errors import ClientError
from ._sdk import AuditEntry, Client, FunctionArgument, FunctionFile, Task, TaskStatus

__all__ = ["AuditEntry", "Client", "ClientError", "FunctionArgument", "FunctionFile", "Task",
           "TaskStatus"]
