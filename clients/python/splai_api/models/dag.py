from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.task_spec import TaskSpec





T = TypeVar("T", bound="Dag")



@_attrs_define
class Dag:
    """ A DAG of tasks. Task ids are unique within the job.

        Attributes:
            tasks (list[TaskSpec]): At least one task; ids unique, parents among them, no cycle.
     """

    tasks: list[TaskSpec]





    def to_dict(self) -> dict[str, Any]:
        from ..models.task_spec import TaskSpec # noqa: PLC0415
        tasks = []
        for tasks_item_data in self.tasks:
            tasks_item = tasks_item_data.to_dict()
            tasks.append(tasks_item)




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "tasks": tasks,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task_spec import TaskSpec # noqa: PLC0415
        d = dict(src_dict)
        tasks = []
        _tasks = d.pop("tasks")
        for tasks_item_data in (_tasks):
            tasks_item = TaskSpec.from_dict(tasks_item_data)



            tasks.append(tasks_item)


        dag = cls(
            tasks=tasks,
        )

        return dag

