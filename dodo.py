from envbuild.tasks import workspace_tasks  # in a workspace dir: from envbuild.tasks import *

globals().update(workspace_tasks("examples/demo"))
