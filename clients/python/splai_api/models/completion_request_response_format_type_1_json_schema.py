from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.completion_request_response_format_type_1_json_schema_schema import CompletionRequestResponseFormatType1JsonSchemaSchema





T = TypeVar("T", bound="CompletionRequestResponseFormatType1JsonSchema")



@_attrs_define
class CompletionRequestResponseFormatType1JsonSchema:
    """ 
        Attributes:
            name (str):
            schema (CompletionRequestResponseFormatType1JsonSchemaSchema):
            strict (bool | Unset):
     """

    name: str
    schema: CompletionRequestResponseFormatType1JsonSchemaSchema
    strict: bool | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.completion_request_response_format_type_1_json_schema_schema import CompletionRequestResponseFormatType1JsonSchemaSchema # noqa: PLC0415
        name = self.name

        schema = self.schema.to_dict()

        strict = self.strict


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "name": name,
            "schema": schema,
        })
        if strict is not UNSET:
            field_dict["strict"] = strict

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.completion_request_response_format_type_1_json_schema_schema import CompletionRequestResponseFormatType1JsonSchemaSchema # noqa: PLC0415
        d = dict(src_dict)
        name = d.pop("name")

        schema = CompletionRequestResponseFormatType1JsonSchemaSchema.from_dict(d.pop("schema"))




        strict = d.pop("strict", UNSET)

        completion_request_response_format_type_1_json_schema = cls(
            name=name,
            schema=schema,
            strict=strict,
        )


        completion_request_response_format_type_1_json_schema.additional_properties = d
        return completion_request_response_format_type_1_json_schema

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
