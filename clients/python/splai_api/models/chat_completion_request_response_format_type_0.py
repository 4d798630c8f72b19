from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.chat_completion_request_response_format_type_0_type import ChatCompletionRequestResponseFormatType0Type






T = TypeVar("T", bound="ChatCompletionRequestResponseFormatType0")



@_attrs_define
class ChatCompletionRequestResponseFormatType0:
    """ 
        Attributes:
            type_ (ChatCompletionRequestResponseFormatType0Type):
     """

    type_: ChatCompletionRequestResponseFormatType0Type





    def to_dict(self) -> dict[str, Any]:
        type_ = self.type_.value


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "type": type_,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        type_ = ChatCompletionRequestResponseFormatType0Type(d.pop("type"))




        chat_completion_request_response_format_type_0 = cls(
            type_=type_,
        )

        return chat_completion_request_response_format_type_0

