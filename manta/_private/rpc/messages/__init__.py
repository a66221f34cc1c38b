"""Every message that crosses a process boundary, one module per service, all re-exported
here (``from manta._private.rpc import messages as m``; ``m.PushTask``).

Tags are wire numbers: never reuse or renumber one; add new messages at the end of their
group. Groups: 1-9 handshake and shared shapes, 10-39 gcs, 40-69 node daemon, 70-99 and
120-149 core worker, 100-119 node-internal (fork server), 150-169 the gcs's access service
(tokens, audit), 170-179 the gcs's task-event store, 180-189 the log API, 190-199 metrics,
200-209 the state API's listings that nodes answer, 210-219 the client port. Placement groups sit where free tags
were when they were added.
"""

from __future__ import annotations

from manta._private.rpc.messages.access import (
    AuditAppend as AuditAppend,
)
from manta._private.rpc.messages.access import (
    IssueToken as IssueToken,
)
from manta._private.rpc.messages.access import (
    ListTokens as ListTokens,
)
from manta._private.rpc.messages.access import (
    ReadAudit as ReadAudit,
)
from manta._private.rpc.messages.access import (
    RevokeToken as RevokeToken,
)
from manta._private.rpc.messages.access import (
    RotateToken as RotateToken,
)
from manta._private.rpc.messages.access import (
    VerifyToken as VerifyToken,
)
from manta._private.rpc.messages.client import (
    ClientAck as ClientAck,
)
from manta._private.rpc.messages.client import (
    ClientCall as ClientCall,
)
from manta._private.rpc.messages.client import (
    ClientOpen as ClientOpen,
)
from manta._private.rpc.messages.client import (
    ClientOpened as ClientOpened,
)
from manta._private.rpc.messages.client import (
    ClientOutput as ClientOutput,
)
from manta._private.rpc.messages.client import (
    ClientPart as ClientPart,
)
from manta._private.rpc.messages.client import (
    ClientResult as ClientResult,
)
from manta._private.rpc.messages.core_worker import (
    ActorCreated as ActorCreated,
)
from manta._private.rpc.messages.core_worker import (
    AddBorrower as AddBorrower,
)
from manta._private.rpc.messages.core_worker import (
    CancelOwnedTask as CancelOwnedTask,
)
from manta._private.rpc.messages.core_worker import (
    CancelTask as CancelTask,
)
from manta._private.rpc.messages.core_worker import (
    CreateActor as CreateActor,
)
from manta._private.rpc.messages.core_worker import (
    ExitWorker as ExitWorker,
)
from manta._private.rpc.messages.core_worker import (
    GeneratorItem as GeneratorItem,
)
from manta._private.rpc.messages.core_worker import (
    GetObject as GetObject,
)
from manta._private.rpc.messages.core_worker import (
    GetReferences as GetReferences,
)
from manta._private.rpc.messages.core_worker import (
    NestedRef as NestedRef,
)
from manta._private.rpc.messages.core_worker import (
    ObjectLost as ObjectLost,
)
from manta._private.rpc.messages.core_worker import (
    ObjectStatus as ObjectStatus,
)
from manta._private.rpc.messages.core_worker import (
    PushTask as PushTask,
)
from manta._private.rpc.messages.core_worker import (
    ReleaseOutOfBand as ReleaseOutOfBand,
)
from manta._private.rpc.messages.core_worker import (
    RemoveBorrower as RemoveBorrower,
)
from manta._private.rpc.messages.core_worker import (
    ReturnObject as ReturnObject,
)
from manta._private.rpc.messages.core_worker import (
    TaskResult as TaskResult,
)
from manta._private.rpc.messages.core_worker import (
    WorkerGone as WorkerGone,
)
from manta._private.rpc.messages.fork import (
    ChildExited as ChildExited,
)
from manta._private.rpc.messages.fork import (
    Forked as Forked,
)
from manta._private.rpc.messages.fork import (
    ForkFailed as ForkFailed,
)
from manta._private.rpc.messages.fork import (
    ForkWorker as ForkWorker,
)
from manta._private.rpc.messages.fork import (
    TemplateParams as TemplateParams,
)
from manta._private.rpc.messages.gcs import (
    ActorArgsReady as ActorArgsReady,
)
from manta._private.rpc.messages.gcs import (
    ActorExiting as ActorExiting,
)
from manta._private.rpc.messages.gcs import (
    ActorInfo as ActorInfo,
)
from manta._private.rpc.messages.gcs import (
    ErrorPush as ErrorPush,
)
from manta._private.rpc.messages.gcs import (
    GetActorDemand as GetActorDemand,
)
from manta._private.rpc.messages.gcs import (
    GetActorInfo as GetActorInfo,
)
from manta._private.rpc.messages.gcs import (
    GetAllJobs as GetAllJobs,
)
from manta._private.rpc.messages.gcs import (
    GetJob as GetJob,
)
from manta._private.rpc.messages.gcs import (
    GetNamedActor as GetNamedActor,
)
from manta._private.rpc.messages.gcs import (
    GetNodes as GetNodes,
)
from manta._private.rpc.messages.gcs import (
    Heartbeat as Heartbeat,
)
from manta._private.rpc.messages.gcs import (
    JobFinished as JobFinished,
)
from manta._private.rpc.messages.gcs import (
    JobInfo as JobInfo,
)
from manta._private.rpc.messages.gcs import (
    KillActor as KillActor,
)
from manta._private.rpc.messages.gcs import (
    KvDel as KvDel,
)
from manta._private.rpc.messages.gcs import (
    KvGet as KvGet,
)
from manta._private.rpc.messages.gcs import (
    KvKeys as KvKeys,
)
from manta._private.rpc.messages.gcs import (
    KvPut as KvPut,
)
from manta._private.rpc.messages.gcs import (
    ListActors as ListActors,
)
from manta._private.rpc.messages.gcs import (
    ListNamedActors as ListNamedActors,
)
from manta._private.rpc.messages.gcs import (
    LogBatch as LogBatch,
)
from manta._private.rpc.messages.gcs import (
    NodeState as NodeState,
)
from manta._private.rpc.messages.gcs import (
    Ping as Ping,
)
from manta._private.rpc.messages.gcs import (
    ReattachDriver as ReattachDriver,
)
from manta._private.rpc.messages.gcs import (
    RegisterActor as RegisterActor,
)
from manta._private.rpc.messages.gcs import (
    RegisterJob as RegisterJob,
)
from manta._private.rpc.messages.gcs import (
    RegisterNode as RegisterNode,
)
from manta._private.rpc.messages.gcs import (
    Subscribe as Subscribe,
)
from manta._private.rpc.messages.gcs import (
    UnregisterNode as UnregisterNode,
)
from manta._private.rpc.messages.gcs import (
    WorkerDied as WorkerDied,
)
from manta._private.rpc.messages.logs import (
    ListLogFiles as ListLogFiles,
)
from manta._private.rpc.messages.logs import (
    LogFileChunk as LogFileChunk,
)
from manta._private.rpc.messages.logs import (
    LogFileListing as LogFileListing,
)
from manta._private.rpc.messages.logs import (
    ReadLogFile as ReadLogFile,
)
from manta._private.rpc.messages.metrics import (
    GetMetrics as GetMetrics,
)
from manta._private.rpc.messages.metrics import (
    ReportMetrics as ReportMetrics,
)
from manta._private.rpc.messages.node import (
    AbortObject as AbortObject,
)
from manta._private.rpc.messages.node import (
    CancelLeaseRequest as CancelLeaseRequest,
)
from manta._private.rpc.messages.node import (
    CreateObject as CreateObject,
)
from manta._private.rpc.messages.node import (
    FlushLogs as FlushLogs,
)
from manta._private.rpc.messages.node import (
    FreeObjects as FreeObjects,
)
from manta._private.rpc.messages.node import (
    GetMemoryReport as GetMemoryReport,
)
from manta._private.rpc.messages.node import (
    GetNodeStats as GetNodeStats,
)
from manta._private.rpc.messages.node import (
    GetWorkerExit as GetWorkerExit,
)
from manta._private.rpc.messages.node import (
    KillWorker as KillWorker,
)
from manta._private.rpc.messages.node import (
    LeaseCancelled as LeaseCancelled,
)
from manta._private.rpc.messages.node import (
    LeaseGrant as LeaseGrant,
)
from manta._private.rpc.messages.node import (
    LeaseInfeasible as LeaseInfeasible,
)
from manta._private.rpc.messages.node import (
    LeaseRefused as LeaseRefused,
)
from manta._private.rpc.messages.node import (
    LeaseSpillback as LeaseSpillback,
)
from manta._private.rpc.messages.node import (
    MemoryReport as MemoryReport,
)
from manta._private.rpc.messages.node import (
    NodeStats as NodeStats,
)
from manta._private.rpc.messages.node import (
    ObjectCreated as ObjectCreated,
)
from manta._private.rpc.messages.node import (
    ObjectLocation as ObjectLocation,
)
from manta._private.rpc.messages.node import (
    PinForTransfer as PinForTransfer,
)
from manta._private.rpc.messages.node import (
    PinObject as PinObject,
)
from manta._private.rpc.messages.node import (
    ProcessReferences as ProcessReferences,
)
from manta._private.rpc.messages.node import (
    RegisterWorker as RegisterWorker,
)
from manta._private.rpc.messages.node import (
    RequestLease as RequestLease,
)
from manta._private.rpc.messages.node import (
    ReturnLease as ReturnLease,
)
from manta._private.rpc.messages.node import (
    SealObject as SealObject,
)
from manta._private.rpc.messages.node import (
    StoreObject as StoreObject,
)
from manta._private.rpc.messages.node import (
    TransferSource as TransferSource,
)
from manta._private.rpc.messages.node import (
    UnpinObjects as UnpinObjects,
)
from manta._private.rpc.messages.node import (
    WorkerBlocked as WorkerBlocked,
)
from manta._private.rpc.messages.node import (
    WorkerExit as WorkerExit,
)
from manta._private.rpc.messages.node import (
    WorkerUnblocked as WorkerUnblocked,
)
from manta._private.rpc.messages.placement import (
    CommitBundles as CommitBundles,
)
from manta._private.rpc.messages.placement import (
    CreatePlacementGroup as CreatePlacementGroup,
)
from manta._private.rpc.messages.placement import (
    GetPlacementGroup as GetPlacementGroup,
)
from manta._private.rpc.messages.placement import (
    ListPlacementGroups as ListPlacementGroups,
)
from manta._private.rpc.messages.placement import (
    PlacementGroupInfo as PlacementGroupInfo,
)
from manta._private.rpc.messages.placement import (
    PlacementGroupSpec as PlacementGroupSpec,
)
from manta._private.rpc.messages.placement import (
    PrepareBundles as PrepareBundles,
)
from manta._private.rpc.messages.placement import (
    ReleaseBundles as ReleaseBundles,
)
from manta._private.rpc.messages.placement import (
    RemovePlacementGroup as RemovePlacementGroup,
)
from manta._private.rpc.messages.placement import (
    WaitPlacementGroup as WaitPlacementGroup,
)
from manta._private.rpc.messages.shared import (
    GENERATOR_DYNAMIC as GENERATOR_DYNAMIC,
)
from manta._private.rpc.messages.shared import (
    GENERATOR_STREAMING as GENERATOR_STREAMING,
)
from manta._private.rpc.messages.shared import (
    ActorSpec as ActorSpec,
)
from manta._private.rpc.messages.shared import (
    Address as Address,
)
from manta._private.rpc.messages.shared import (
    ArgValue as ArgValue,
)
from manta._private.rpc.messages.shared import (
    Hello as Hello,
)
from manta._private.rpc.messages.shared import (
    NodeInfo as NodeInfo,
)
from manta._private.rpc.messages.shared import (
    Published as Published,
)
from manta._private.rpc.messages.shared import (
    ReferenceInfo as ReferenceInfo,
)
from manta._private.rpc.messages.shared import (
    TaskSpec as TaskSpec,
)
from manta._private.rpc.messages.shared import (
    Welcome as Welcome,
)
from manta._private.rpc.messages.state import (
    ListRuntimeEnvs as ListRuntimeEnvs,
)
from manta._private.rpc.messages.state import (
    ListWorkers as ListWorkers,
)
from manta._private.rpc.messages.state import (
    RuntimeEnvReport as RuntimeEnvReport,
)
from manta._private.rpc.messages.task_events import (
    ExplainTask as ExplainTask,
)
from manta._private.rpc.messages.task_events import (
    ListTasks as ListTasks,
)
from manta._private.rpc.messages.task_events import (
    SummarizeTasks as SummarizeTasks,
)
from manta._private.rpc.messages.task_events import (
    TaskEventBatch as TaskEventBatch,
)
from manta._private.rpc.messages.task_events import (
    TaskListing as TaskListing,
)
from manta._private.rpc.messages.task_events import (
    TaskTimeline as TaskTimeline,
)
