from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.output_ref import OutputRef





T = TypeVar("T", bound="TaskInputType1")



@_attrs_define
class TaskInputType1:
    """ 
        Attributes:
            output (OutputRef): A reference to a parent's output, optionally narrowed by a JSON pointer (RFC 6901).
     """

    output: OutputRef





    def to_dict(self) -> dict[str, Any]:
        from ..models.output_ref import OutputRef # noqa: PLC0415
        output = self.output.to_dict()


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "output": output,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.output_ref import OutputRef # noqa: PLC0415
        d = dict(src_dict)
        output = OutputRef.from_dict(d.pop("output"))




        task_input_type_1 = cls(
            output=output,
        )

        return task_input_type_1

