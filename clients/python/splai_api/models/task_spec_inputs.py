from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.task_input_type_0 import TaskInputType0
  from ..models.task_input_type_1 import TaskInputType1





T = TypeVar("T", bound="TaskSpecInputs")



@_attrs_define
class TaskSpecInputs:
    """ Named inputs: literals, or references to a parent's output.

     """

    additional_properties: dict[str, TaskInputType0 | TaskInputType1] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.task_input_type_0 import TaskInputType0 # noqa: PLC0415
        from ..models.task_input_type_1 import TaskInputType1 # noqa: PLC0415
        
        field_dict: dict[str, Any] = {}
        for prop_name, prop in self.additional_properties.items():
            
            if isinstance(prop, TaskInputType0):
                field_dict[prop_name] = prop.to_dict()
            else:
                field_dict[prop_name] = prop.to_dict()



        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task_input_type_0 import TaskInputType0 # noqa: PLC0415
        from ..models.task_input_type_1 import TaskInputType1 # noqa: PLC0415
        d = dict(src_dict)
        task_spec_inputs = cls(
        )


        additional_properties = {}
        for prop_name, prop_dict in d.items():
            def _parse_additional_property(data: object) -> TaskInputType0 | TaskInputType1:
                try:
                    if not isinstance(data, dict):
                        raise TypeError()
                    componentsschemas_task_input_type_0 = TaskInputType0.from_dict(data)



                    return componentsschemas_task_input_type_0
                except (TypeError, ValueError, AttributeError, KeyError):
                    pass
                if not isinstance(data, dict):
                    raise TypeError()
                componentsschemas_task_input_type_1 = TaskInputType1.from_dict(data)



                return componentsschemas_task_input_type_1

            additional_property = _parse_additional_property(prop_dict)

            additional_properties[prop_name] = additional_property

        task_spec_inputs.additional_properties = additional_properties
        return task_spec_inputs

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> TaskInputType0 | TaskInputType1:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: TaskInputType0 | TaskInputType1) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
