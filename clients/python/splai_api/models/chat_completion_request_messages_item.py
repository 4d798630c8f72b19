from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.chat_completion_request_messages_item_role import ChatCompletionRequestMessagesItemRole






T = TypeVar("T", bound="ChatCompletionRequestMessagesItem")



@_attrs_define
class ChatCompletionRequestMessagesItem:
    """ 
        Attributes:
            content (str):
            role (ChatCompletionRequestMessagesItemRole):
     """

    content: str
    role: ChatCompletionRequestMessagesItemRole
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        content = self.content

        role = self.role.value


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "content": content,
            "role": role,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        content = d.pop("content")

        role = ChatCompletionRequestMessagesItemRole(d.pop("role"))




        chat_completion_request_messages_item = cls(
            content=content,
            role=role,
        )


        chat_completion_request_messages_item.additional_properties = d
        return chat_completion_request_messages_item

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
