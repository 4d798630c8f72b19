""" Contains all the data models used in inputs/outputs """

from .chat_completion_request import ChatCompletionRequest
from .chat_completion_request_messages_item import ChatCompletionRequestMessagesItem
from .chat_completion_request_messages_item_role import ChatCompletionRequestMessagesItemRole
from .chat_completion_request_response_format_type_0 import ChatCompletionRequestResponseFormatType0
from .chat_completion_request_response_format_type_0_type import ChatCompletionRequestResponseFormatType0Type
from .chat_completion_request_response_format_type_1 import ChatCompletionRequestResponseFormatType1
from .chat_completion_request_response_format_type_1_json_schema import ChatCompletionRequestResponseFormatType1JsonSchema
from .chat_completion_request_response_format_type_1_json_schema_schema import ChatCompletionRequestResponseFormatType1JsonSchemaSchema
from .chat_completion_request_stream_options import ChatCompletionRequestStreamOptions
from .completion_request import CompletionRequest
from .completion_request_response_format_type_0 import CompletionRequestResponseFormatType0
from .completion_request_response_format_type_0_type import CompletionRequestResponseFormatType0Type
from .completion_request_response_format_type_1 import CompletionRequestResponseFormatType1
from .completion_request_response_format_type_1_json_schema import CompletionRequestResponseFormatType1JsonSchema
from .completion_request_response_format_type_1_json_schema_schema import CompletionRequestResponseFormatType1JsonSchemaSchema
from .dag import Dag
from .data_classification import DataClassification
from .embedding_request import EmbeddingRequest
from .error_body import ErrorBody
from .expand import Expand
from .job_request import JobRequest
from .job_submission import JobSubmission
from .job_type_type_0 import JobTypeType0
from .open_ai_error import OpenAiError
from .open_ai_error_detail import OpenAiErrorDetail
from .output_ref import OutputRef
from .priority import Priority
from .requeue_request import RequeueRequest
from .requirements import Requirements
from .sub_dag import SubDag
from .task_input_type_0 import TaskInputType0
from .task_input_type_1 import TaskInputType1
from .task_kind import TaskKind
from .task_spec import TaskSpec
from .task_spec_inputs import TaskSpecInputs

__all__ = (
    "ChatCompletionRequest",
    "ChatCompletionRequestMessagesItem",
    "ChatCompletionRequestMessagesItemRole",
    "ChatCompletionRequestResponseFormatType0",
    "ChatCompletionRequestResponseFormatType0Type",
    "ChatCompletionRequestResponseFormatType1",
    "ChatCompletionRequestResponseFormatType1JsonSchema",
    "ChatCompletionRequestResponseFormatType1JsonSchemaSchema",
    "ChatCompletionRequestStreamOptions",
    "CompletionRequest",
    "CompletionRequestResponseFormatType0",
    "CompletionRequestResponseFormatType0Type",
    "CompletionRequestResponseFormatType1",
    "CompletionRequestResponseFormatType1JsonSchema",
    "CompletionRequestResponseFormatType1JsonSchemaSchema",
    "Dag",
    "DataClassification",
    "EmbeddingRequest",
    "ErrorBody",
    "Expand",
    "JobRequest",
    "JobSubmission",
    "JobTypeType0",
    "OpenAiError",
    "OpenAiErrorDetail",
    "OutputRef",
    "Priority",
    "RequeueRequest",
    "Requirements",
    "SubDag",
    "TaskInputType0",
    "TaskInputType1",
    "TaskKind",
    "TaskSpec",
    "TaskSpecInputs",
)
