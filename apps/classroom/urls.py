from django.urls import path

from . import board, presenting, sheet_views, views

urlpatterns = [
    path("classes/", views.class_list, name="class-list"),
    path("classes/join/", views.join, name="class-join"),
    path("classes/share/", views.share, name="class-share"),
    path("classes/<int:class_id>/", views.class_page, name="class-page"),
    path("classes/<int:class_id>/code/", views.regenerate_code, name="class-regenerate-code"),
    path("classes/<int:class_id>/remove/", views.remove_member, name="class-remove-member"),
    path("classes/<int:class_id>/board/", board.board_page, name="class-board"),
    path("classes/<int:class_id>/board.csv", board.board_csv, name="class-board-csv"),
    path("classes/<int:class_id>/board-answers.csv", board.board_answers_csv, name="class-board-answers-csv"),
    path("sheets/", sheet_views.sheets_page, name="sheet-list"),
    path("sheets/<slug:lab>/<slug:name>/", sheet_views.sheet_page, name="sheet-page"),
    path("sheets/<slug:lab>/<slug:name>/answer/", sheet_views.sheet_answer, name="sheet-answer"),
    path("api/sheets/<slug:lab>/<slug:name>/answers/", sheet_views.api_sheet_answer, name="api-sheet-answers"),
    path("api/classes/join/", views.api_join, name="api-class-join"),
    path("api/classes/<int:class_id>/share/", views.api_share, name="api-class-share"),
    path("api/classes/<int:class_id>/present/", presenting.api_present, name="api-class-present"),
    path("api/presentations/<int:presentation_id>/end/", presenting.api_end, name="api-presentation-end"),
]
