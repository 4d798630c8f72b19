from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
from typing import Literal, cast

if TYPE_CHECKING:
  from ..models.completion_request_response_format_type_1_json_schema import CompletionRequestResponseFormatType1JsonSchema





T = TypeVar("T", bound="CompletionRequestResponseFormatType1")



@_attrs_define
class CompletionRequestResponseFormatType1:
    """ 
        Attributes:
            json_schema (CompletionRequestResponseFormatType1JsonSchema):
            type_ (Literal['json_schema']):
     """

    json_schema: CompletionRequestResponseFormatType1JsonSchema
    type_: Literal['json_schema']





    def to_dict(self) -> dict[str, Any]:
        from ..models.completion_request_response_format_type_1_json_schema import CompletionRequestResponseFormatType1JsonSchema # noqa: PLC0415
        json_schema = self.json_schema.to_dict()

        type_ = self.type_


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "json_schema": json_schema,
            "type": type_,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.completion_request_response_format_type_1_json_schema import CompletionRequestResponseFormatType1JsonSchema # noqa: PLC0415
        d = dict(src_dict)
        json_schema = CompletionRequestResponseFormatType1JsonSchema.from_dict(d.pop("json_schema"))




        type_ = cast(Literal['json_schema'] , d.pop("type"))
        if type_ != 'json_schema':
            raise ValueError(f"type must match const 'json_schema', got '{type_}'")

        completion_request_response_format_type_1 = cls(
            json_schema=json_schema,
            type_=type_,
        )

        return completion_request_response_format_type_1

