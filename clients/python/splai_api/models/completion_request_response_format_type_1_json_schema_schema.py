from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import Literal, cast






T = TypeVar("T", bound="CompletionRequestResponseFormatType1JsonSchemaSchema")



@_attrs_define
class CompletionRequestResponseFormatType1JsonSchemaSchema:
    """ 
        Attributes:
            type_ (Literal['object']):
     """

    type_: Literal['object']
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        type_ = self.type_


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "type": type_,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        type_ = cast(Literal['object'] , d.pop("type"))
        if type_ != 'object':
            raise ValueError(f"type must match const 'object', got '{type_}'")

        completion_request_response_format_type_1_json_schema_schema = cls(
            type_=type_,
        )


        completion_request_response_format_type_1_json_schema_schema.additional_properties = d
        return completion_request_response_format_type_1_json_schema_schema

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
